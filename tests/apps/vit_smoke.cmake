# ctest vit_smoke: train_vit for a few steps on synthetic images with every position encoding, then
# eval_vit at two resolutions, then both runs in one eval_vit call; fails on any non-zero exit or a
# missing output file. Then a SeqPE run interrupted after step 2 and resumed must log the same
# losses and accuracies as the uninterrupted one.
file(REMOVE_RECURSE ${WORK})
foreach(pe ape sin rope rope2d rope_mixed seqpe)
  execute_process(COMMAND ${TRAIN} --config ${CMAKE_CURRENT_LIST_DIR}/vit_smoke.json --pe ${pe} --steps 4
                          --out ${WORK}/${pe} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "train_vit --pe ${pe} failed (${rc})")
  endif()
  execute_process(COMMAND ${EVAL} --run ${WORK}/${pe} --sizes 28,56 --plot ${WORK}/${pe}/eval.svg RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "eval_vit --run ${WORK}/${pe} failed (${rc})")
  endif()
  foreach(f run.json metrics.jsonl best.safetensors checkpoint.safetensors eval.csv eval.svg)
    if(NOT EXISTS ${WORK}/${pe}/${f})
      message(FATAL_ERROR "missing ${WORK}/${pe}/${f}")
    endif()
  endforeach()
endforeach()

# Both runs in one evaluation, at a size that is not a multiple of the patch (30 px: grid 7, cropped).
execute_process(COMMAND ${EVAL} --run ${WORK}/rope2d --run ${WORK}/seqpe --sizes 28,30 --csv ${WORK}/both.csv
                        --plot ${WORK}/both.svg RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "eval_vit with two runs failed (${rc})")
endif()
file(STRINGS ${WORK}/both.csv rows)
list(LENGTH rows count)
file(READ ${WORK}/both.svg svg)
string(REGEX MATCHALL "<polyline" lines "${svg}")
list(LENGTH lines line_count)
if(NOT count EQUAL 5 OR NOT "${rows}" MATCHES "seqpe,seqpe,30,7," OR NOT line_count EQUAL 2)
  message(FATAL_ERROR "eval_vit with two runs: expected a header, 4 rows and 2 plotted lines, got ${rows} and ${line_count} lines")
endif()

foreach(stop 2 0)
  execute_process(COMMAND ${TRAIN} --config ${CMAKE_CURRENT_LIST_DIR}/vit_smoke.json --pe seqpe --steps 4
                          --stop-after ${stop} --out ${WORK}/resumed RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "train_vit --pe seqpe --stop-after ${stop} failed (${rc})")
  endif()
endforeach()
# Step, test accuracy and training loss of each evaluation (timings left out).
function(evaluations run out)
  file(READ ${run}/metrics.jsonl text)
  string(REGEX MATCHALL "\"(step|test_accuracy|train_loss)\":[^,}]*" fields "${text}")
  set(${out} "${fields}" PARENT_SCOPE)
endfunction()
evaluations(${WORK}/seqpe uninterrupted)
evaluations(${WORK}/resumed resumed)
list(LENGTH uninterrupted count)
if(NOT count EQUAL 6)
  message(FATAL_ERROR "expected 2 evaluations in ${WORK}/seqpe/metrics.jsonl, got: ${uninterrupted}")
endif()
if(NOT "${uninterrupted}" STREQUAL "${resumed}")
  message(FATAL_ERROR "the resumed SeqPE run differs:\n  uninterrupted ${uninterrupted}\n  resumed       ${resumed}")
endif()
